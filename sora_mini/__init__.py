"""sora_mini: a Sora-style text-to-video diffusion transformer you can read, run and measure on a CPU.

Each subpackage is one stage of the data flow (see DESIGN.md): ``world`` -> ``compression`` ->
``patches`` -> ``models`` + ``diffusion`` -> ``train`` -> ``evaluate``. Nothing is done at import.
"""

__version__ = "0.1.0"
