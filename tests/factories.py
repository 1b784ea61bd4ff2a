"""Small test data factories shared by the test modules (importable as ``factories``)."""
import numpy as np
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


def set_rigid_mlp(decoder, motion, max_deg=15.0, gain=1.0):
    """Set a rigid decoder's MLP so latent z0 turns the domain by ``gain · max_deg · z0`` about the motion's hinge.

    Output linear in z0: rotation vector θ·z0·axis, translation θ·axis×(c − hinge point) (first order).
    """
    axis = np.asarray(motion.info["hinge_axis"], dtype=np.float64)
    axis /= np.linalg.norm(axis)
    c = decoder.centroids[0].double().numpy()
    p = np.asarray(motion.info["hinge_point_angstrom"], dtype=np.float64)
    theta = np.radians(max_deg) * gain
    out = np.concatenate([theta * axis, theta * np.cross(axis, c - p)]) / decoder.scales.double().numpy()
    lin = [m for m in decoder.mlp if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for m in lin:
            m.weight.zero_()
            m.bias.zero_()
        lin[0].weight[0, 0], lin[0].weight[1, 0] = 1.0, -1.0  # relu(z0), relu(-z0)
        lin[1].weight[0, 0], lin[1].weight[1, 1] = 1.0, 1.0
        lin[2].weight[:, 0] = torch.as_tensor(out, dtype=torch.float32)
        lin[2].weight[:, 1] = -torch.as_tensor(out, dtype=torch.float32)


def cs_ctf_fields(t) -> dict:
    """The ``ctf/`` fields of a cryoSPARC .cs for a particle table (``gmmplat.io.star`` columns):
    field -> (dtype, values)."""
    import numpy as np

    return {
        "ctf/df1_A": (np.float32, t["defocus_u_angstrom"].to_numpy()),
        "ctf/df2_A": (np.float32, t["defocus_v_angstrom"].to_numpy()),
        "ctf/df_angle_rad": (np.float32, np.radians(t["defocus_angle_deg"].to_numpy())),
        "ctf/accel_kv": (np.float32, t["voltage_kv"].to_numpy()),
        "ctf/cs_mm": (np.float32, t["cs_mm"].to_numpy()),
        "ctf/amp_contrast": (np.float32, t["amplitude_contrast"].to_numpy()),
    }


def save_cs_records(path, fields: dict, n: int):
    """Write ``n`` records of ``fields`` (field -> (dtype or (dtype, shape), values)) as a .cs file; returns them."""
    import numpy as np

    rec = np.zeros(n, dtype=[(k, *((v[0],) if not isinstance(v[0], tuple) else v[0])) for k, v in fields.items()])
    for k, (_, values) in fields.items():
        rec[k] = values
    with open(path, "wb") as fh:  # np.save(path) would append .npy
        np.save(fh, rec)
    return rec
