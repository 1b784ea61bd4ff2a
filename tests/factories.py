"""Small test data factories shared by the test modules (importable as ``factories``)."""
import torch


def random_gmm(n, box, apix, seed=0, sigma_px=(1.5, 2.5), extent=0.25):
    """A random asymmetric GMM ``(n, 5)`` inside the central part of the box."""
    g = torch.Generator().manual_seed(seed)
    half = box * apix * extent
    xyz = (torch.rand(n, 3, generator=g) * 2 - 1) * half
    amp = 0.5 + torch.rand(n, generator=g)
    sig = (sigma_px[0] + (sigma_px[1] - sigma_px[0]) * torch.rand(n, generator=g)) * apix
    return torch.cat([xyz, amp[:, None], sig[:, None]], dim=1)


def assert_one_line_error(excinfo, path, *words):
    """The raised error is one line naming ``path`` and containing every word (case-insensitive)."""
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg
    for w in words:
        assert w.lower() in msg.lower(), msg


def assert_cli_error(code, err, verb, *words):
    """A command-line failure: exit code 2 and exactly one stderr line ``gmmplat VERB: error: ...``
    containing every word (the file or option at fault), no traceback."""
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gmmplat {verb}: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def devices():
    """Devices the step contract tests run on: the CPU always, CUDA when present."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
