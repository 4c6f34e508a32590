"""DDPM (Gaussian diffusion): q(x_t | x_0) and the eps / v / x0 regression targets.

Shapes: ``x0``, ``noise``, ``x_t`` [B, ...]; ``t`` [B] (or [B, T] per frame) integer timesteps 0..T-1
held in a float tensor. Ho et al. 2020 (arXiv 2006.11239); v-prediction from Salimans & Ho 2022
(arXiv 2202.00512, Sec. 4 and Appendix D).
"""

from __future__ import annotations

import torch

from .objective import DiffusionObjective
from .schedules import NoiseSchedule

PREDICTION_TYPES = ("eps", "v", "x0")
# diffusers' names for the same three targets
DIFFUSERS_PREDICTION = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}


def check_prediction(prediction: str) -> str:
    if prediction not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction!r}; allowed: {', '.join(PREDICTION_TYPES)}")
    return prediction


class GaussianDiffusion(DiffusionObjective):
    """DDPM's forward process and training target; the samplers live in ``samplers.py``.

    Shapes: see the module docstring. The model gets the integer timestep (as a float) unscaled.
    """

    kind = "gaussian"
    timestep_scale = 1.0
    default_sampler = "ddim"

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 prediction: str = "eps", beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__()
        self.prediction = check_prediction(prediction)
        self.schedule = NoiseSchedule(num_train_timesteps, beta_schedule, beta_start, beta_end)

    @property
    def num_train_timesteps(self) -> int:
        return self.schedule.num_train_timesteps

    def extra_repr(self) -> str:
        return f"prediction={self.prediction}"

    # -- timesteps -------------------------------------------------------------------------------
    def check_timesteps(self, t) -> torch.Tensor:
        return self.schedule.check_timesteps(t)

    def sample_timesteps(self, batch_size: int, *, device=None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """t ~ Uniform{0, ..., T-1} (Algorithm 1, line 3), as a float tensor [B]."""
        gen_device = generator.device if generator is not None else device
        t = torch.randint(0, self.num_train_timesteps, (batch_size,), generator=generator,
                          device=gen_device)
        return t.to(device=device, dtype=torch.float32)

    # -- forward process --------------------------------------------------------------------------
    def _ab(self, t, x):
        """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), broadcast against x."""
        return (self.schedule.coefficient("sqrt_alphas_cumprod", t, x),
                self.schedule.coefficient("sqrt_one_minus_alphas_cumprod", t, x))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Ho et al., Eq. 4)."""
        a, s = self._ab(t, x0)
        return a * x0 + s * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x0 (Salimans & Ho 2022, Eq. 13 region)."""
        a, s = self._ab(t, x0)
        return a * noise - s * x0

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the model regresses: eps, v or x0, as chosen by ``prediction``."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "v":
            return self.velocity(x0, noise, t)
        return x0

    # -- conversions between predictions ----------------------------------------------------------
    def predict_x0_eps(self, x_t: torch.Tensor, t, model_output: torch.Tensor):
        """(x0_hat, eps_hat) from the model's output, whatever its prediction type.

        eps: x0 = (x_t - sqrt(1-ab) eps) / sqrt(ab)     (invert Eq. 4)
        v:   x0 = sqrt(ab) x_t - sqrt(1-ab) v,  eps = sqrt(ab) v + sqrt(1-ab) x_t
        x0:  eps = (x_t - sqrt(ab) x0) / sqrt(1-ab)
        """
        a, s = self._ab(t, x_t)
        if self.prediction == "eps":
            return (x_t - s * model_output) / a, model_output
        if self.prediction == "v":
            return a * x_t - s * model_output, a * model_output + s * x_t
        return model_output, (x_t - a * model_output) / s

    def convert(self, x_t: torch.Tensor, t, model_output: torch.Tensor, to: str) -> torch.Tensor:
        """The model's output re-expressed as another prediction type ('eps', 'v' or 'x0')."""
        check_prediction(to)
        x0, eps = self.predict_x0_eps(x_t, t, model_output)
        if to == "x0":
            return x0
        if to == "eps":
            return eps
        return self.velocity(x0, eps, t)
