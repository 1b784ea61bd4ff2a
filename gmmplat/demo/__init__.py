"""The end-to-end demo (``run``), the notebook runner (``notebooks``) and the runs the notebooks
share (``sample_run``).
"""
