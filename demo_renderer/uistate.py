"""What the demo's controls hold: the state the overlay (:mod:`demo_renderer.overlay`, the
only module that imports imgui) edits and the demo loop reads. Plain data, so the loop runs
the same with ``--no-overlay``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoUiState:
    """``changed`` holds the names of the fields the user changed in the last
    ``Overlay.frame()`` (cleared at its start). ``export_requested`` turns True when "Export
    CSV + PNG" is clicked, ``load_scene_requested`` when "Load" is (``scene_path`` then names
    the scene file); the demo acts, sets them back to False and reports in ``status``."""

    scene: str = ""
    scenes: list[str] = field(default_factory=list)
    scene_path: str = ""  # a .gltf/.glb/.obj/.json scene file to load
    load_scene_requested: bool = False
    pass_name: str = "final"
    passes: list[str] = field(default_factory=lambda: ["final"])
    pass_labels: dict[str, str] = field(default_factory=dict)  # a pass's description (a tooltip)
    quality: str = "QUALITY"
    compare: str = "wipe"
    split: float = 0.5
    loupe: bool = False
    loupe_zoom: int = 4
    debug_view: str = "none"
    paused: bool = False
    free_camera: bool = False
    show_overlay: bool = True
    export_requested: bool = False
    status: str = ""  # one line the overlay shows: what the last action did, or why it failed
    # where the plugin runs (hardware.RuntimeChoice): the choices offered and made, and why
    device: str = "cpu"
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    backend: str = "torch"
    backends: list[str] = field(default_factory=lambda: ["torch"])
    network: str = "stss"
    networks: list[str] = field(default_factory=lambda: ["stss"])
    runtime: str = ""  # one line: preset, network, device / back-end (precision), size
    runtime_reasons: list[str] = field(default_factory=list)  # why each choice was made
    # frame generation: the multiplier ("2x", "3x", "4x", "auto"), the rate "auto" tracks, and what the
    # last rendered frame generated (the demo sets it; with "auto", the plugin's choice)
    frame_multiplier: str = "2x"
    multipliers: list[str] = field(default_factory=lambda: ["2x", "3x", "4x", "auto"])
    multiplier_labels: dict[str, str] = field(default_factory=dict)
    target_fps: float = 120.0
    generating: int = 0
    changed: set[str] = field(default_factory=set)
