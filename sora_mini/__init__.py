"""sora_mini: a Sora-style text-to-video diffusion transformer you can read, run and measure on a CPU.

Each subpackage is one stage of the data flow: ``world`` -> ``compression`` -> ``patches`` ->
``models`` + ``diffusion`` -> ``train`` -> ``evaluate``, in layers that import only downward
(``docs/architecture.md`` in the repository is the map). Nothing is done at import.
"""

__version__ = "0.1.0"
