"""Training recipes: the knobs, the built-in ``proxified`` recipe, and config files.

A recipe is a flat dict of knobs. The effective recipe of a model is built in this order,
each layer overriding the previous: the named base recipe, the dataset's
``recipe_defaults``, a config file (TOML, or the original pipeline's INI ``.cfg``), then
command-line values. It is stored with every training record.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

from ..errors import AnbenchError

# spec 4.1 / 4.5-4.7: the recipe of the released Accel-NASBench accuracies
PROXIFIED: dict[str, Any] = {
    "recipe": "proxified",
    "epochs": 16,
    "batch_size": 512,             # per process (per GPU)
    "val_batch_size": 256,         # per process
    "lr": 0.425,                   # peak LR for lr_batch_size images per step
    "lr_batch_size": 2048,         # 4 GPUs x 512: the peak scales linearly with the global batch
    "lr_peak_epoch": 2.0,
    "lr_start_factor": 1e-4,       # LR at epoch 0 = lr_start_factor x peak
    "optimizer": "sgd",            # "adam": PyTorch's Adam (betas 0.9/0.999), for the 1-D tasks (spec 9.2)
    "lr_schedule": "triangular",   # "constant": lr as given at every step, not scaled with the batch
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 1e-4,          # not on biases and BatchNorm (1-D) parameters
    "label_smoothing": 0.1,
    "min_res": 160,
    "max_res": 192,
    "start_ramp": 11,
    "end_ramp": 13,
    "val_resolution": 256,
    "crop_ratio": 224 / 256,       # validation centre crop
    "val_last_epochs": 1,          # validate in the last N epochs; the final epoch's metrics are reported
    "stochastic_depth": 0.2,
    "dropout": 0.2,
    "activation": "relu",
    "precision": "auto",           # trainer decides: fp16 AMP on CUDA, fp32 on CPU
    "channels_last": "auto",       # trainer decides: on for CUDA
    "max_train_samples": None,     # None: the whole split
    "max_val_samples": None,
    "num_workers": 8,
}
RECIPES = {"proxified": PROXIFIED}

_CHOICES = {"activation": ("relu", "silu"), "precision": ("auto", "fp32", "fp16", "bf16"),
            "optimizer": ("sgd", "adam"), "lr_schedule": ("triangular", "constant"),
            "channels_last": ("auto", True, False)}
_OPTIONAL_INT = ("max_train_samples", "max_val_samples")


def base_recipe(name: str) -> dict[str, Any]:
    try:
        return dict(RECIPES[name])
    except KeyError:
        raise AnbenchError(f"unknown recipe '{name}'; recipes: {', '.join(sorted(RECIPES))}") from None


def coerce(key: str, value: Any, where: str) -> Any:
    """``value`` converted to the type of knob ``key``; AnbenchError naming ``where`` if it cannot be."""
    if key not in PROXIFIED:
        raise AnbenchError(f"{where}: unknown recipe knob '{key}'; knobs: {', '.join(sorted(PROXIFIED))}")
    default = PROXIFIED[key]
    try:
        if key in _OPTIONAL_INT:
            value = None if value in (None, "", "none", "None") else int(value)
            if value is not None and value < 1:
                raise ValueError("must be at least 1")
        elif key == "channels_last":
            value = _bool(value) if str(value).lower() != "auto" else "auto"
        elif isinstance(default, bool):
            value = _bool(value)
        elif isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("must be a whole number")
            value = int(value)
        elif isinstance(default, float):
            value = float(value)
        else:
            value = str(value)
    except (TypeError, ValueError) as exc:
        raise AnbenchError(f"{where}: {key}={value!r} is not valid ({exc})") from None
    if key in _CHOICES and value not in _CHOICES[key]:
        raise AnbenchError(f"{where}: {key} must be one of {', '.join(map(str, _CHOICES[key]))}, not {value!r}")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean")


def check(recipe: dict[str, Any]) -> dict[str, Any]:
    """Cross-knob checks of an effective recipe; returns it."""
    if recipe["epochs"] < 1:
        raise AnbenchError("recipe: epochs must be at least 1")
    if recipe["batch_size"] < 1 or recipe["val_batch_size"] < 1:
        raise AnbenchError("recipe: batch sizes must be at least 1")
    if recipe["lr_schedule"] == "triangular" and not 0 <= recipe["lr_peak_epoch"] <= recipe["epochs"]:
        raise AnbenchError(f"recipe: lr_peak_epoch={recipe['lr_peak_epoch']} must lie in [0, epochs={recipe['epochs']}] "
                           f"(with fewer epochs set it too, e.g. --set lr_peak_epoch={recipe['epochs'] / 4:g})")
    if not 1 <= recipe["val_last_epochs"] <= recipe["epochs"]:
        raise AnbenchError("recipe: val_last_epochs must lie in [1, epochs] (the final epoch is always validated)")
    if recipe["min_res"] > recipe["max_res"] or recipe["start_ramp"] > recipe["end_ramp"]:
        raise AnbenchError("recipe: need min_res <= max_res and start_ramp <= end_ramp")
    if not 0 <= recipe["label_smoothing"] < 1:
        raise AnbenchError("recipe: label_smoothing must lie in [0, 1)")
    # sizes and rates that would only fail deep inside training (division by zero, bad crops)
    for key in ("min_res", "max_res", "val_resolution", "lr_batch_size"):
        if recipe[key] < 1:
            raise AnbenchError(f"recipe: {key} must be at least 1, not {recipe[key]}")
    for key in ("lr", "weight_decay", "momentum", "lr_start_factor", "lr_peak_epoch", "start_ramp", "end_ramp",
                "num_workers"):
        if not recipe[key] >= 0:  # also refuses NaN
            raise AnbenchError(f"recipe: {key} must be at least 0, not {recipe[key]}")
    if not 0 < recipe["crop_ratio"] <= 1:
        raise AnbenchError(f"recipe: crop_ratio must lie in (0, 1], not {recipe['crop_ratio']}")
    for key in ("stochastic_depth", "dropout"):
        if not 0 <= recipe[key] < 1:
            raise AnbenchError(f"recipe: {key} must lie in [0, 1), not {recipe[key]}")
    return recipe


def apply(recipe: dict[str, Any], overrides: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(recipe)
    for key, value in overrides.items():
        out[key] = coerce(key, value, where)
    return out


def parse_set(items: tuple[str, ...]) -> dict[str, str]:
    """``--set KEY=VALUE`` options as a dict (values still text)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AnbenchError(f"--set takes KEY=VALUE, got '{item}'")
        out[key.strip()] = value.strip()
    return out


# --- config files ------------------------------------------------------------------

# INI .cfg (spec 4.1): (section, key) -> knob; keys listed in _INI_IGNORED are read but have
# no recipe meaning in anbench (the command line / environment handle them).
_INI_KEYS = {
    ("trainval", "epochs"): "epochs",
    ("trainval", "train_batch_size"): "batch_size",
    ("trainval", "val_batch_size"): "val_batch_size",
    ("trainval", "val_resolution"): "val_resolution",
    ("trainval", "min_res"): "min_res",
    ("trainval", "max_res"): "max_res",
    ("trainval", "start_ramp"): "start_ramp",
    ("trainval", "end_ramp"): "end_ramp",
    ("optimizer", "lr"): "lr",
    ("optimizer", "weight_decay"): "weight_decay",
    ("optimizer", "lr_peak_epoch"): "lr_peak_epoch",
    ("model", "label_smoothing"): "label_smoothing",
    ("model", "activation_fn"): "activation",
    ("dataloader", "num_workers"): "num_workers",
}
_INI_IGNORED = {
    "logging": {"save", "note", "report_freq", "fast", "use_wandb"},
    "model": {"design"},
    "dataloader": {"train_dataset", "val_dataset", "in_memory", "data_path"},
    "trainval": {"seed", "lr_tta", "update_freq"},
    "distributed": {"distributed", "cluster", "port"},
}
_EXACT_KEYS = {("optimizer", "min_lr"), ("optimizer", "warmup_epochs")}


def load_config(path: str | Path) -> dict[str, Any]:
    """Recipe knobs from a TOML file (flat ``knob = value``; ``recipe = "name"`` picks the base)
    or an INI ``.cfg``/``.ini`` of the original pipeline. Values are type-checked. The INI
    ``[trainval] seed`` is returned as ``"seed"`` (the caller uses it when ``--seed`` is absent)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnbenchError(f"cannot read config {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() in (".cfg", ".ini"):
        return _load_ini(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AnbenchError(f"config {path}: not valid TOML ({exc})") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            raise AnbenchError(f"config {path}: tables are not used; write knobs at the top level ([{key}] found)")
        if key == "seed":
            out[key] = _seed(value, f"config {path}: seed")
        elif key == "recipe":
            out[key] = value
        else:
            out[key] = coerce(key, value, f"config {path}")
    return out


def _seed(value: Any, where: str) -> int:
    """A seed is a non-negative integer (a TOML int, or INI text of one); else the user's mistake."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AnbenchError(f"{where}: must be a non-negative integer, not {value!r}")
    return value


def _load_ini(text: str, path: Path) -> dict[str, Any]:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise AnbenchError(f"config {path}: not a valid INI file ({' '.join(str(exc).split())})") from None
    out: dict[str, Any] = {}
    for section in parser.sections():
        for key, value in parser.items(section, raw=True):
            if (section, key) in _EXACT_KEYS:
                raise AnbenchError(f"config {path}: [{section}] {key} belongs to the 'exact' recipes "
                                   f"(rmsprop, step schedule); anbench trains the proxified recipe only")
            if (section, key) in _INI_KEYS:
                knob = _INI_KEYS[(section, key)]
                out[knob] = coerce(knob, value, f"config {path} [{section}] {key}")
            elif section == "trainval" and key == "seed":
                text = value.strip()
                out["seed"] = _seed(int(text) if text.isdigit() else text, f"config {path} [trainval] seed")
            elif key not in _INI_IGNORED.get(section, ()):
                raise AnbenchError(f"config {path}: unknown key [{section}] {key}")
    return out


def effective(base: str, dataset_defaults: dict[str, Any], config: dict[str, Any],
              cli: dict[str, Any]) -> dict[str, Any]:
    """The effective recipe: base, then dataset defaults, config file, command line."""
    name = config.get("recipe", base)
    recipe = base_recipe(name)
    recipe = apply(recipe, dataset_defaults, "dataset recipe defaults")
    recipe = apply(recipe, {k: v for k, v in config.items() if k not in ("recipe", "seed")}, "config")
    recipe = apply(recipe, cli, "command line")
    return check(recipe)
