"""Differentially private fine-tuning: DP-SGD through Opacus, attached to the one loop.

By default ethos clips with its own book-keeping engine (:mod:`ethos.training.book_keeping`:
per-example norms without per-example gradients, the clipped sum in one weight-gradient pass, at
about the cost of a non-private step). Opacus supplies the alternatives (per-sample hooks, or
ghost clipping with a second backward pass), the probe of a model's layers and the privacy
accountants. ethos adds what a transformer fine-tune needs around them: Poisson sampling in the
loop's own batching, the noise multiplier solved for a target epsilon over the whole run,
batch-shaped position ids (Hugging Face models share one ``(1, L)`` position-id row across the
batch, which would read as one example), a refusal of layers whose per-example gradients cannot
be told apart, and the epsilon actually spent for the manifest, the audit and the model card.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.hooks import RemovableHandle

from ethos.config import MAX_EPSILON, PrivacyConfig, RunConfig
from ethos.data import Dataset
from ethos.errors import ConfigError, ModelError, listed
from ethos.training.batching import Encoded, collate
from ethos.training.book_keeping import BookKeepingClipper, noisy_mean_gradient
from ethos.training.ethics_options import private
from ethos.training.strategies import Plan, Step, Strategy

if TYPE_CHECKING:
    from ethos.training.loop import LoopResult


@dataclass
class PrivateTraining:
    """The wrapped model and optimizer, and what the accountant needs to report epsilon."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    config: PrivacyConfig
    sample_rate: float
    noise_multiplier: float
    planned_steps: int
    wants_position_ids: bool
    frozen: tuple[str, ...] = ()
    clipper: BookKeepingClipper | None = None
    expected_batch_size: int = 1

    def loss(self, per_example: torch.Tensor) -> Any:
        """What to call ``backward`` on: ghost and book-keeping clipping need the per-example
        losses."""
        if self.config.clipping == "ghost":
            from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

            return DPTensorFastGradientClipping(self.module, self.optimizer, per_example, "mean")
        if self.clipper is not None:
            return BookKeepingLoss(self, per_example)
        return per_example.mean()

    def private_gradients(self, per_example: torch.Tensor) -> None:
        """Book-keeping's backward pass: every trained weight's ``grad`` set to its clipped,
        summed, noised per-example gradients over the expected batch size."""
        assert self.clipper is not None
        noisy_mean_gradient(
            self.clipper.clipped_sum(per_example),
            self.noise_multiplier,
            self.config.max_grad_norm,
            self.expected_batch_size,
            order=[p for group in self.optimizer.param_groups for p in group["params"]],
        )

    def detach(self) -> None:
        """Take off every hook and per-example attribute, so the model predicts like any other."""
        if self.clipper is not None:
            self.clipper.remove()
        _detach_private(self.module)

    def add_position_ids(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return with_position_ids(batch) if self.wants_position_ids else batch

    def report(self, steps: int) -> dict[str, Any]:
        """Epsilon spent after ``steps`` optimizer steps (fewer than planned if stopped early)."""
        epsilon, used = accounted_epsilon(
            self.noise_multiplier,
            self.sample_rate,
            steps,
            self.config.delta,
            self.config.accountant,
        )
        return {
            "epsilon": epsilon,
            **({"accountant_used": used} if used != self.config.accountant else {}),
            "delta": self.config.delta,
            "target_epsilon": self.config.epsilon,
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": steps,
            "planned_steps": self.planned_steps,
            "max_grad_norm": self.config.max_grad_norm,
            "accountant": self.config.accountant,
            "clipping": self.config.clipping,
            "sampling": "poisson",
            "frozen_for_privacy": list(self.frozen),
        }


class BookKeepingLoss:
    """The batch loss as the loop sees it (``item``, division by an accumulation count), whose
    ``backward`` leaves clipped, noised gradients instead of the plain ones."""

    def __init__(self, private: PrivateTraining, per_example: torch.Tensor) -> None:
        self.private = private
        self.per_example = per_example

    def backward(self, **_: Any) -> None:
        self.private.private_gradients(self.per_example)

    def item(self) -> float:
        return float(self.per_example.detach().mean())

    def detach(self) -> torch.Tensor:
        return self.per_example.detach().mean()

    def __truediv__(self, other: float) -> BookKeepingLoss:
        return BookKeepingLoss(self.private, self.per_example / other)


def freeze_for_privacy(model: torch.nn.Module, config: PrivacyConfig) -> list[str]:
    """Freeze what ``config`` keeps out of DP training (before the optimizer is built); returns
    the names of the frozen weights for the manifest."""
    if not config.freeze_embeddings:
        return []
    getter = getattr(model, "get_input_embeddings", None)
    embeddings = getter() if callable(getter) else None
    weight = getattr(embeddings, "weight", None)
    if not isinstance(weight, torch.nn.Parameter) or not weight.requires_grad:
        return []  # already frozen (LoRA) or not a plain table
    weight.requires_grad_(False)
    return [name for name, param in model.named_parameters() if param is weight]


def with_position_ids(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``batch`` plus one row of position ids per example (contiguous: Opacus's embedding
    norm sampler views the ids flat)."""
    ids = batch["input_ids"]
    positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids).contiguous()
    return {**batch, "position_ids": positions}


PRV_MAX_POINTS = 20_000_000
"""The most grid points the PRV accountant may discretise the privacy loss on. Its grid grows with
the loss and the steps: 3 million points took 2.3 s here, 30 million 20 s, and 87 million
(sigma 0.6, q 0.1, 20,000 steps) 164 s and several GB before returning inf. Above the limit the
RDP accountant answers: a valid, slightly looser upper bound (RDP 863 there), at once."""


def spent_epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str
) -> float:
    """Epsilon of ``steps`` Poisson-sampled Gaussian-mechanism steps, by the named accountant
    (PRV falls back to RDP where its grid would be too large: see :func:`accounted_epsilon`)."""
    return accounted_epsilon(noise_multiplier, sample_rate, steps, delta, accountant)[0]


def accounted_epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str
) -> tuple[float, str]:
    """(epsilon, the accountant that computed it): ``accountant``, or ``rdp`` when the PRV
    accountant's grid would exceed :data:`PRV_MAX_POINTS`."""
    if steps == 0:
        return 0.0, accountant
    if noise_multiplier == 0:
        return math.inf, accountant
    from opacus.accountants import PRVAccountant, RDPAccountant

    if accountant == "prv" and prv_grid_points(noise_multiplier, sample_rate, steps, delta) > (
        PRV_MAX_POINTS
    ):
        accountant = "rdp"
    counter = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    counter.history = [(noise_multiplier, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the PRV accountant warns about its own error bounds
        return float(counter.get_epsilon(delta)), accountant


def prv_grid_points(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> int:
    """How many points Opacus's PRV accountant would discretise on, at its default errors
    (epsilon error 0.01, delta error delta / 1000); computing it takes milliseconds."""
    from opacus.accountants import PRVAccountant
    from opacus.accountants.analysis.prv import PoissonSubsampledGaussianPRV

    domain = PRVAccountant()._get_domain(
        prvs=[PoissonSubsampledGaussianPRV(sample_rate, noise_multiplier)],
        num_self_compositions=[steps],
        eps_error=0.01,
        delta_error=delta / 1000,
    )
    return int(domain.size)


def solve_noise_multiplier(
    epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """The smallest noise multiplier (to Opacus's search tolerance) that keeps the whole run
    within ``(epsilon, delta)``."""
    from opacus.accountants.utils import get_noise_multiplier

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(
                get_noise_multiplier(
                    target_epsilon=epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=accountant,
                )
            )
    except ValueError as exc:
        raise ConfigError(
            f"no noise multiplier reaches epsilon={epsilon} at delta={delta} over {steps} steps "
            f"at sampling rate {sample_rate:.4g}: {exc}",
            hint="raise train.privacy.epsilon, or train for fewer steps",
        ) from None


def check_private_model(model: torch.nn.Module) -> None:
    """Refuse layers whose gradients mix examples (batch norm) or that Opacus cannot hook."""
    from opacus.validators import ModuleValidator

    problems = ModuleValidator.validate(model, strict=False)
    if problems:
        listing = "; ".join(str(p) for p in problems[:5])
        raise ModelError(
            f"this model cannot be trained with differential privacy: {listing}",
            hint="DP-SGD needs per-example gradients; pick a model without batch normalisation "
            "(the default MiniLM works), or train without train.privacy",
        )


def probe_per_example_gradients(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor
) -> None:
    """Refuse a model whose per-example gradients Opacus would get wrong, before training.

    Opacus's hooks assume batch-first inputs and one input row per example. Some models break
    that silently: XLNet runs length-first, and models that share a ``(1, L)`` position row
    (or a relative-position bias) across the batch give those weights a "per-example" gradient
    of batch size 1 or of the sequence length. Clipping would then bound the wrong thing and the
    privacy guarantee would not hold. One forward and backward pass on a few real examples,
    with the RNG state put back afterwards, shows it: every trainable weight must come out with
    one gradient per example.
    """
    from opacus import GradSampleModule

    n = int(labels.shape[0])
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = GradSampleModule(model)
        try:
            logits = probe(**batch).logits
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()
            wrong = []
            for name, param in model.named_parameters():
                if not param.requires_grad:
                    continue
                sample = getattr(param, "grad_sample", None)
                if sample is None or sample.shape[0] != n:
                    got = "none" if sample is None else f"{sample.shape[0]} rows for {n} examples"
                    wrong.append(f"{name} ({got})")
        except (RuntimeError, ValueError, AttributeError, NotImplementedError) as exc:
            wrong = [f"the probe step failed: {type(exc).__name__}: {exc}"]
        finally:
            probe.remove_hooks()
            for param in model.parameters():
                param.grad = None
                for attribute in ("grad_sample", "_forward_counter"):
                    if hasattr(param, attribute):
                        delattr(param, attribute)
    if wrong:
        raise ModelError(
            f"Opacus cannot compute per-example gradients for this model's layers: {listed(wrong)}",
            hint="DP-SGD needs one gradient per example for every trained weight; pick a "
            "batch-first model with absolute positions (BERT-style, the default MiniLM works), "
            "freeze the offending layers with LoRA (train.peft), or train without train.privacy",
        )


def make_private(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: PrivacyConfig,
    *,
    n_examples: int,
    batch_size: int,
    planned_steps: int,
    probe: tuple[dict[str, torch.Tensor], torch.Tensor] | None = None,
    frozen: Sequence[str] = (),
) -> PrivateTraining:
    """Wrap ``model`` and ``optimizer`` for DP-SGD; the sampling rate is batch_size / n.

    ``probe`` (a few real examples, batched as the loop batches them, and their labels) is run
    through :func:`probe_per_example_gradients` first.
    """
    model.train()  # the validator (rightly) refuses a model left in eval mode
    check_private_model(model)
    sample_rate = min(1.0, batch_size / max(n_examples, 1))
    if config.noise_multiplier is not None:
        sigma = config.noise_multiplier
        planned = spent_epsilon(sigma, sample_rate, planned_steps, config.delta, "rdp")
        if not planned <= MAX_EPSILON:
            raise ConfigError(
                f"train.privacy.noise_multiplier {sigma:g} is too small for this run: "
                f"{planned_steps} steps at sampling rate {sample_rate:.3g} would spend "
                f"epsilon {planned:.3g}, above {MAX_EPSILON:g}, where the guarantee means nothing",
                hint="raise noise_multiplier, give a target epsilon instead, or use epsilon: .inf "
                "to train without privacy",
            )
    else:
        assert config.epsilon is not None
        sigma = solve_noise_multiplier(
            config.epsilon, config.delta, sample_rate, planned_steps, config.accountant
        )
    wants_positions = "position_ids" in inspect.signature(model.forward).parameters
    if probe is not None:
        batch, labels = probe
        probe_per_example_gradients(
            model, with_position_ids(batch) if wants_positions else batch, labels
        )
    clipper = None
    if config.clipping == "book_keeping":
        module, private_optimizer = model, optimizer
        clipper = BookKeepingClipper(model, config.max_grad_norm)
    else:
        module, private_optimizer = _opacus_wrapped(model, optimizer, config, sigma, batch_size)
    return PrivateTraining(
        module=module,
        optimizer=private_optimizer,
        config=config,
        sample_rate=sample_rate,
        noise_multiplier=sigma,
        planned_steps=planned_steps,
        wants_position_ids=wants_positions,
        frozen=tuple(frozen),
        clipper=clipper,
        expected_batch_size=batch_size,
    )


def _opacus_wrapped(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    config: PrivacyConfig,
    sigma: float,
    batch_size: int,
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Opacus's per-example wrapper of ``model`` and its clipping, noising optimizer."""
    from opacus import GradSampleModule
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import (
        GradSampleModuleFastGradientClipping,
    )
    from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus warns about secure RNG; see the docs
            if config.clipping == "ghost":
                ghost = GradSampleModuleFastGradientClipping(
                    model, max_grad_norm=config.max_grad_norm, use_ghost_clipping=True
                )
                return ghost, DPOptimizerFastGradientClipping(
                    optimizer,
                    noise_multiplier=sigma,
                    max_grad_norm=config.max_grad_norm,
                    expected_batch_size=batch_size,
                )
            return GradSampleModule(model), DPOptimizer(
                optimizer,
                noise_multiplier=sigma,
                max_grad_norm=config.max_grad_norm,
                expected_batch_size=batch_size,
            )
    except NotImplementedError as exc:
        raise ModelError(
            f"Opacus cannot compute per-example gradients for this model: {exc}",
            hint="pick a model whose trainable layers Opacus supports, or train without "
            "train.privacy",
        ) from None


def poisson_batches(
    n: int, sample_rate: float, steps: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """``steps`` batches, each holding every example independently with ``sample_rate``.

    Poisson sampling is what the accountants' privacy amplification assumes; fixed-size shuffled
    batches would make the reported epsilon wrong. Batch sizes vary around ``n * sample_rate``.
    """
    return [np.flatnonzero(generator.random(n) < sample_rate) for _ in range(steps)]


class DPSGD(Strategy):
    """``train.privacy``: DP-SGD. Poisson batches, per-example clipping (instead of the loop's
    clip of the summed gradient) and noise; the epsilon spent goes to ``training.privacy``."""

    name = "dp_sgd"
    records = ("training.privacy",)

    def __init__(self, config: PrivacyConfig) -> None:
        self.config = config
        self.private: PrivateTraining | None = None
        self._positions: RemovableHandle | None = None

    @classmethod
    def from_config(cls, config: RunConfig, train: Dataset, tokenizer: Any) -> DPSGD | None:
        if not private(config):
            return None
        assert config.train.privacy is not None
        return cls(config.train.privacy)

    def prepare(self, plan: Plan) -> None:
        train, config = plan.train, plan.config
        if config.gradient_accumulation_steps != 1:
            raise ConfigError(
                "train.privacy does not combine with gradient_accumulation_steps > 1",
                hint="raise train.batch_size instead; Poisson batches already vary in size",
            )
        frozen = freeze_for_privacy(plan.model, self.config)
        _drop_frozen(plan.optimizer)  # built before the freeze
        self.private = private_training = make_private(
            plan.model,
            plan.optimizer,
            self.config,
            n_examples=len(train),
            batch_size=config.batch_size,
            planned_steps=plan.total_steps,
            probe=_probe_batch(train, plan.pad_id, plan.device),
            frozen=frozen,
        )
        plan.model, plan.optimizer = private_training.module, private_training.optimizer
        plan.max_grad_norm = None  # every example's gradient is clipped instead
        if private_training.wants_position_ids:
            self._positions = plan.model.register_forward_pre_hook(
                _add_position_ids, with_kwargs=True
            )
        n, rate = len(train), private_training.sample_rate
        batches = math.ceil(len(train) / config.batch_size)

        def poisson(generator: np.random.Generator) -> list[np.ndarray]:
            return poisson_batches(n, rate, batches, generator)

        plan.batch_order = poisson

    def loss(self, step: Step, loss: Any) -> Any:
        assert self.private is not None
        if self.config.clipping in ("ghost", "book_keeping"):  # both need per-example losses
            return self.private.loss(step.per_example)
        return loss

    def finish(self, result: LoopResult) -> None:
        assert self.private is not None
        result.privacy = self.private.report(result.optimizer_steps)
        if self._positions is not None:
            self._positions.remove()
        self.private.detach()


def _probe_batch(
    train: Encoded, pad_id: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The first three training examples, batched as the loop batches them."""
    batch = collate(train, np.arange(min(3, len(train))), pad_id)
    labels = batch.pop("labels")
    return {k: v.to(device) for k, v in batch.items()}, labels.to(device)


def _drop_frozen(optimizer: torch.optim.Optimizer) -> None:
    """Take weights frozen after the optimizer was built out of its groups, as if they had been
    frozen first: its state dict (and so every checkpoint) lists only the weights it steps."""
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if p.requires_grad]
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]


def _add_position_ids(
    _module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Forward pre-hook: the loop's batch, with one position-id row per example."""
    return args, with_position_ids(kwargs)


def _detach_private(model: Any) -> None:
    """Remove Opacus's hooks and per-example attributes so the model predicts like any other."""
    wrapped = getattr(model, "_module", None) and model
    if wrapped is None:
        return
    for cleanup in ("remove_hooks", "cleanup"):
        method = getattr(wrapped, cleanup, None)
        if callable(method):
            with suppress(ValueError, AttributeError):
                method()
