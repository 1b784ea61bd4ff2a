"""The column names of the normalized particle table and the RELION columns they come from.

Their own module so that the STAR reader and writer share them without importing each other.
"""
from __future__ import annotations

#: Columns of the normalized particle table (``ParticleStar.table``), in order.
TABLE_COLUMNS = [
    "stack_path", "image_index", "rot_deg", "tilt_deg", "psi_deg",
    "shift_x_angstrom", "shift_y_angstrom", "defocus_u_angstrom", "defocus_v_angstrom",
    "defocus_angle_deg", "voltage_kv", "cs_mm", "amplitude_contrast", "phase_shift_deg",
    "bfactor", "pixel_size_angstrom", "box_size", "optics_group",
]
POSE_COLUMNS = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
CTF_COLUMNS = ["rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnVoltage",
               "rlnSphericalAberration", "rlnAmplitudeContrast"]
_POSE_NAMES = dict(zip(POSE_COLUMNS, ["rot_deg", "tilt_deg", "psi_deg"]))
_CTF_NAMES = dict(zip(CTF_COLUMNS, ["defocus_u_angstrom", "defocus_v_angstrom", "defocus_angle_deg",
                                    "voltage_kv", "cs_mm", "amplitude_contrast"]))
