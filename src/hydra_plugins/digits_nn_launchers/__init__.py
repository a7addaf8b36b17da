"""Hydra launchers of this project (Hydra loads launchers from hydra_plugins only)."""
