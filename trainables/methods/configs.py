"""Every method's trial config: the hyperparameters it accepts, their defaults and what it refuses.

Kept apart from the methods' training code (``trainables/methods/<method>.py``, which imports torch, Ray and
MLflow) so that a sweep validates every trial's config before anything heavy loads: a bad ``--set`` value is refused
in a fraction of a second (``launch/checks.py``). Each method module names its class here as its ``Config``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trainables.config import ConfigError, TrainConfig
from trainables.dataset_names import validate_dataset_name
from trainables.methods.afs_masks import DEFAULT_MASK, EVAL_EPS, check_mask

# Table 6's switches: UAG (universal, class-wise inverse perturbations; otherwise instance-wise IAT), FR (the feature
# term of Eq. 4), IAM (inverse-adversary momentum, Eq. 8). "none" is instance-wise IAT without either term.
Components = Literal["none", "uag", "fr", "iam", "uag+fr", "uag+iam", "fr+iam", "uag+fr+iam"]


@dataclass(frozen=True)
class BaselineConfig(TrainConfig):
    training: Literal["standard", "pgd_at", "trades"] = "pgd_at"
    beta: float = 6.0
    # (low, high): each batch is attacked at an eps drawn uniformly from [low, high] instead of at ``eps``, with the
    # PGD step scaled to keep attack_step/eps (AFS Table 6, "random perturbation budgets ranging from 3/255 to 8/255").
    # ``eps`` stays the threat model of checkpoint selection. Empty: every batch at ``eps``.
    train_eps_range: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta} must not be negative")
        if self.train_eps_range:
            if len(self.train_eps_range) != 2 or not 0 <= self.train_eps_range[0] < self.train_eps_range[1] <= 1:
                raise ConfigError(f"train_eps_range={list(self.train_eps_range)}: expected [low, high] with "
                                  "0 <= low < high <= 1, e.g. [3/255, 8/255]")
            if self.training == "standard" or self.eps == 0:
                raise ConfigError("train_eps_range needs adversarial training: training='pgd_at' or 'trades' and "
                                  "eps > 0 (the PGD step is attack_step scaled by drawn eps / eps)")


EXTRACTOR_EXPERIMENT = "afs-extractors"  # the MLflow experiment (sweep family) of every extractor sweep


# An AFS extractor is a PGD-AT model (Sec. 2.2, Eq. 3-4; eps 0 is standard training), so its config is the
# baseline's, plus the threat model its Delta_z and final metrics are measured at.
@dataclass(frozen=True)
class ExtractorConfig(BaselineConfig):
    # Training eps varies (0..9/255); Table 1, Delta_z and the merger compare every extractor at one threat model.
    eval_eps: float = EVAL_EPS
    delta_z_steps: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.eval_eps <= 1 or self.delta_z_steps < 1:
            raise ConfigError(f"eval_eps={self.eval_eps} must be in (0, 1] and delta_z_steps={self.delta_z_steps} >= 1")


@dataclass(frozen=True)
class MergerConfig(TrainConfig):
    extractor_sweep: str = ""  # the extractor sweep's name (its MLflow parent run's ``sweep`` tag)
    mask: str = DEFAULT_MASK
    alpha: float = 0.5  # Sec. 3.2: "practically, alpha can be set to 0.5"
    alpha_mode: Literal["mix", "weighted"] = "mix"
    # Sec. 3: "We train the linear merger 5 epochs"; the reference code trains 7 and keeps the 5th (keep_epoch=5), as
    # the paper preset of sweeps/afs_merger.py does.
    epochs: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.extractor_sweep:
            raise ConfigError("extractor_sweep is empty: name the extractor sweep whose checkpoints the merger stacks")
        check_mask(self.mask)
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha={self.alpha} is outside [0, 1]")
        if self.attack_bn != "eval":
            raise ConfigError("the extractors are frozen in eval mode (running BatchNorm statistics): attack_bn='eval'")


@dataclass(frozen=True)
class BiaMATConfig(TrainConfig):
    variant: Literal["at", "trades"] = "at"
    aux_datasets: tuple[str, ...] = ("synthetic_aux",)
    alpha: float = 1.0
    pi: float = 0.55
    labels: Literal["gated", "aux", "uniform"] = "gated"
    warmup_epochs: int = 5
    alpha_in_warmup: bool = False
    warmup_aux_loss: Literal["times_zero", "omitted"] = "times_zero"
    aux_batch_size: int = 128
    beta: float = 6.0
    trades_aux_high: Literal["kl", "adv_ce"] = "kl"
    attack_bn: Literal["eval", "batch"] = "batch"  # the reference crafts AT examples on mixed-batch statistics
    aux_mix: Literal["concatenated", "equal"] = "concatenated"  # how several auxiliary sets share a batch
    # A fixed random subset of this many images of each auxiliary set, the same for every trial and seed (appendix
    # Table 9's ImageNet-100k: aux_n=100000); 0 takes every image.
    aux_n: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha={self.alpha} is outside [0, 1] (Eq. 1 biases training toward the primary task)")
        if self.pi <= 0:
            raise ConfigError(f"pi={self.pi} must be positive (omega = pi * mean primary confidence)")
        if not self.aux_datasets:
            raise ConfigError("aux_datasets is empty: BiaMAT needs at least one auxiliary dataset")
        if self.dataset in self.aux_datasets:
            raise ConfigError(f"auxiliary dataset {self.dataset!r} equals the primary dataset; pick another one")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} leaves no BiaMAT epoch of epochs={self.epochs}")
        if self.variant == "trades" and self.attack_bn != "eval":
            raise ConfigError("the TRADES variant attacks in eval mode: set attack_bn='eval'")
        if self.aux_n < 0:
            raise ConfigError(f"aux_n={self.aux_n} must be 0 (every auxiliary image) or a subset size, e.g. 100000")
        if self.aux_mix == "equal" and self.aux_batch_size < len(self.aux_datasets):
            raise ConfigError(f"aux_mix='equal' needs aux_batch_size >= {len(self.aux_datasets)} (one image per "
                              "auxiliary set)")
        if self.variant == "at" and self.trades_aux_high != "kl":
            raise ConfigError("trades_aux_high applies to variant='trades' only")
        for name in self.aux_datasets:
            try:
                validate_dataset_name(name)
            except ValueError as exc:
                raise ConfigError(f"auxiliary dataset: {exc}") from None


@dataclass(frozen=True)
class UIATConfig(TrainConfig):
    # Paper schedule (Sec. 4.1): 100 epochs, SGD with Nesterov momentum 0.9, cyclic LR peaking at 0.1, wd 5e-4.
    epochs: int = 100
    nesterov: bool = True
    schedule: Literal["piecewise", "cyclic", "constant"] = "cyclic"
    lam: float = 3.5  # lambda of Eq. 7 (3.0 on SVHN)
    inv_eps: float = 4 / 255  # eps', radius of the inverse perturbations
    inv_step: float = 1 / 255  # alpha', step of the z_c update and of IAT's inverse PGD
    beta: float = 1.0  # weight of the feature term of Eq. 4 (used when components include "fr")
    gamma: float = 0.9  # momentum factor of Eq. 8
    components: Components = "uag+fr+iam"
    # T of Eq. 8 (0-based epoch). Not given in the paper; "the learned representation is unstable during the early
    # training period": the first tenth of the default 100 epochs, while the cyclic LR still climbs.
    momentum_start: int = 10
    oneoff: bool = False
    # T' of the one-off variant (0-based epoch). Not given in the paper, whose one-off targets match full UIAT (Table 1)
    # and are called "well-learned": the middle of training, at the peak of the cyclic LR, leaving half of it.
    oneoff_epoch: int = 50
    # Inverse PGD steps of instance-wise IAT (components without "uag"); the supplementary material that gives them is
    # not available. Table 2 puts IAT 0.6 min/epoch above UIAT on ResNet-18 (2.83 vs 2.20), a few extra passes, and
    # 5 steps of alpha' = 1/255 reach the eps' = 4/255 boundary from x.
    iat_steps: int = 5
    # The attack that makes x_adv (Table 5): PGD, or a single-step attack. align_lam weighs GradAlign's regulariser
    # when training_attack is "gradalign" (0.2: GradAlign's CIFAR-10 value at 8/255; 0 is plain FGSM).
    training_attack: Literal["pgd", "rs_fgsm", "n_fgsm", "gradalign"] = "pgd"
    align_lam: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.training_attack == "pgd" and (self.eps <= 0 or self.attack_steps < 1):
            raise ConfigError("UIAT trains on PGD adversarial examples: set eps > 0 and attack_steps >= 1")
        if self.eps <= 0:
            raise ConfigError(f"UIAT on {self.training_attack} trains on adversarial examples: set eps > 0")
        if self.align_lam < 0:
            raise ConfigError(f"align_lam={self.align_lam} must not be negative (GradAlign uses 0.2 at eps 8/255)")
        if self.training_attack == "gradalign" and self.align_lam > 0 and self.compile:
            raise ConfigError("compile=true cannot train GradAlign's regulariser: torch.compile has no double "
                              "backward; set compile=false")
        if self.lam < 0 or self.beta < 0:
            raise ConfigError(f"lam={self.lam} and beta={self.beta} must not be negative")
        for name in ("inv_eps", "inv_step", "gamma"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} is outside [0.0, 1.0]")
        if self.feature_regularisation and self.beta == 0:
            raise ConfigError("components include 'fr' but beta=0: set beta > 0, or drop 'fr' from components")
        if self.inverse_momentum and self.oneoff:
            raise ConfigError("the one-off variant stores p once in epoch oneoff_epoch and has no momentum: drop "
                              f"'iam' from components (e.g. components='{self.components.replace('+iam', '')}')")
        if self.inverse_momentum and not 1 <= self.momentum_start < self.epochs:
            raise ConfigError(f"momentum_start={self.momentum_start} must be in [1, epochs={self.epochs}) (Eq. 8 "
                              "needs the previous epoch's p): set it there, or drop 'iam' from components")
        if self.oneoff and not 0 <= self.oneoff_epoch < self.epochs - 1:
            raise ConfigError(f"oneoff_epoch={self.oneoff_epoch} leaves no epoch of epochs={self.epochs} that reuses "
                              "the stored targets: set it below epochs - 1")
        if not self.universal and self.iat_steps < 1:
            raise ConfigError(f"instance-wise IAT (components without 'uag') needs iat_steps >= 1, got "
                              f"{self.iat_steps}")

    @property
    def universal(self) -> bool:
        return "uag" in self.components.split("+")

    @property
    def feature_regularisation(self) -> bool:
        return "fr" in self.components.split("+")

    @property
    def inverse_momentum(self) -> bool:
        return "iam" in self.components.split("+")


@dataclass(frozen=True)
class HATConfig(TrainConfig):
    helper_sweep: str = ""  # the baselines sweep holding the standard-trained helpers (its parent run's ``sweep`` tag)
    beta: float = 2.5  # weight of the TRADES KL term
    gamma: float = 0.5  # weight of the helper term
    h: float = 2.0  # how far along x_adv - x the helper example lies
    attack_start: Literal["uniform", "normal"] = "normal"  # the TRADES convention, x + 0.001 N(0, 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.helper_sweep:
            raise ConfigError("helper_sweep is empty: name the baselines sweep whose standard-training trials are the "
                              "helpers (e.g. baselines-smoke)")
        if self.eps <= 0 or self.attack_steps < 1:
            raise ConfigError("HAT trains on TRADES adversarial examples: set eps > 0 and attack_steps >= 1")
        if self.beta < 0 or self.gamma < 0:
            raise ConfigError(f"beta={self.beta} and gamma={self.gamma} must not be negative (2.5 and 0.5 on CIFAR-10)")
        if self.h < 1:
            raise ConfigError(f"h={self.h} must be at least 1: the helper example lies beyond x_adv (the paper uses 2)")


@dataclass(frozen=True)
class MARTConfig(TrainConfig):
    beta: float = 6.0  # weight of the misclassification-aware KL term of Eq. 9

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps <= 0 or self.attack_steps < 1:
            raise ConfigError("MART trains on PGD adversarial examples: set eps > 0 and attack_steps >= 1")
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta} must not be negative (the paper uses 6.0)")


@dataclass(frozen=True)
class FATConfig(TrainConfig):
    variant: Literal["at", "trades"] = "trades"  # the outer loss: PGD-AT's CE or TRADES' (beta)
    beta: float = 6.0
    # Early-stopped PGD: a point stops tau steps after it is first misclassified. tau starts at ``tau`` and grows by
    # one at each of ``tau_milestones`` (1-based epochs), FAT's "dynamic tau".
    tau: int = 0
    tau_milestones: tuple[int, ...] = ()
    omega: float = 0.0  # std of the Gaussian noise added to every attack step (the FAT code's omega)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps <= 0 or self.attack_steps < 1:
            raise ConfigError("FAT trains on early-stopped PGD examples: set eps > 0 and attack_steps >= 1")
        negative = [f"{name}={value}" for name, value in (("beta", self.beta), ("tau", self.tau), ("omega", self.omega))
                    if value < 0]
        if negative:
            raise ConfigError(f"{', '.join(negative)} must not be negative (FAT's code: beta 6, tau from 0, omega 0)")
        if list(self.tau_milestones) != sorted(set(self.tau_milestones)) or any(m < 1 for m in self.tau_milestones):
            raise ConfigError(f"tau_milestones={list(self.tau_milestones)}: expected increasing 1-based epochs, e.g. "
                              "[31, 51, 71] (FAT for TRADES: tau 0, 1, 2, 3)")

    def tau_at(self, epoch: int) -> int:
        """tau in 0-based ``epoch``."""
        return self.tau + sum(epoch + 1 >= m for m in self.tau_milestones)


@dataclass(frozen=True)
class LBGATConfig(TrainConfig):
    teacher_model: str = "resnet18"  # the natural classifier trained beside the robust one
    beta: float = 6.0  # weight of the TRADES term (LBGAT+TRADES)

    def __post_init__(self) -> None:
        super().__post_init__()
        from trainables.model_names import validate_model_name

        try:
            validate_model_name(self.teacher_model)
        except ValueError as exc:
            raise ConfigError(f"teacher_model: {exc}") from None
        if self.eps <= 0 or self.attack_steps < 1:
            raise ConfigError("LBGAT trains on PGD adversarial examples: set eps > 0 and attack_steps >= 1")
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta} must not be negative (the paper's LBGAT+TRADES uses 6.0)")


@dataclass(frozen=True)
class TLAConfig(TrainConfig):
    # The triplet terms (trainables/methods/tla.py), the TLA code's CIFAR-10 configuration in brackets.
    triplet_weight: float = 2.0  # weight of each of the two triplet losses (lamda_triplet)
    margin: float = 0.03  # of the cosine-distance triplet loss (margin_list)
    feature_penalty: float = 1e-3  # weight of the mean squared feature of the three (regularize_lambda)
    # The hard negatives are mined from negative_pool x batch_size clean training images drawn each step (mul_num).
    negative_pool: int = 10
    positive_noise: float = 8 / 255  # the clean positive's uniform pixel noise, on the 8-bit grid (nat_noise_level)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps <= 0 or self.attack_steps < 1:
            raise ConfigError("TLA trains on PGD adversarial examples: set eps > 0 and attack_steps >= 1")
        negative = [f"{name}={value}" for name, value in (("triplet_weight", self.triplet_weight),
                                                          ("margin", self.margin),
                                                          ("feature_penalty", self.feature_penalty),
                                                          ("positive_noise", self.positive_noise)) if value < 0]
        if negative:
            raise ConfigError(f"{', '.join(negative)} must not be negative (the TLA code: triplet weight 2, margin "
                              "0.03, feature penalty 1e-3, positive noise 8/255)")
        if self.negative_pool < 1:
            raise ConfigError(f"negative_pool={self.negative_pool} must be at least 1 (the TLA code mines among 10 x "
                              "batch_size clean images)")


@dataclass(frozen=True)
class SingleStepConfig(TrainConfig):
    variant: Literal["rs_fgsm", "n_fgsm"] = "n_fgsm"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps <= 0:
            raise ConfigError(f"{self.variant} trains on adversarial examples: set eps > 0 (e.g. 8/255)")


@dataclass(frozen=True)
class GradAlignConfig(TrainConfig):
    lam: float = 0.2  # lambda, the weight of the alignment term

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps <= 0:
            raise ConfigError("GradAlign trains on FGSM adversarial examples: set eps > 0 (e.g. 8/255)")
        if self.lam < 0:
            raise ConfigError(f"lam={self.lam} must not be negative (0.2 at eps 8/255; 0 is plain FGSM training)")
        if self.compile and self.lam > 0:
            raise ConfigError("compile=true cannot train GradAlign: torch.compile has no double backward, which the "
                              "regulariser needs; set compile=false")
