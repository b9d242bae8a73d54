"""Every hook an anbench plugin can implement. Each docstring is the hook's contract.

Plugins implement hooks with ``@anbench.hookimpl`` and are found through the
``anbench`` entry-point group. Registry hooks receive a ``register`` callback and push
objects into it; they must be cheap and must not import vendor SDKs (torch_xla,
pytorch_nndct, xir, vart): availability is answered later, by the registered object.
A hook implementation may declare only the arguments it uses.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("anbench")
hookimpl = pluggy.HookimplMarker("anbench")


# --- registries ----------------------------------------------------------------------


@hookspec
def register_devices(register):
    """Register device runners that measure inference speed.

    :param register: call ``register(runner)`` once per device. ``runner`` implements
        :class:`anbench.plugin_types.DeviceRunner`: a unique lowercase ``name`` (what
        ``anbench measure --device NAME`` takes), a one-line ``summary``,
        ``availability()`` returning ``None`` when usable or a one-line reason when not
        (e.g. ``"torch_xla is not installed"``), ``describe()`` returning a JSON-able
        dict of host/device facts for provenance, ``prepare(request)`` and
        ``run(prepared, batches)``.
    :returns: nothing; the return value is ignored.

    Synchronisation: ``run`` must return only after the device has finished every batch
    it launched (CUDA synchronise, ``xm.wait_device_ops()``, VART ``wait``), so that the
    caller's wall clock measures completed work. A registering name that is already taken
    is a load error of the later plugin.

    .. versionadded:: 0.1
    """


@hookspec
def register_datasets(register):
    """Register datasets that trainers read and measurements take inputs from.

    :param register: call ``register(dataset)`` once per dataset. ``dataset``
        implements :class:`anbench.plugin_types.Dataset`: ``name``, ``summary``,
        ``task`` (``"image2d"`` or ``"seq1d"``), ``num_classes``, ``input_shape``
        (channels first, without batch), ``availability()`` (``None`` or a reason, e.g.
        ``"ffcv is not installed"`` or ``"set ANBENCH_IMAGENET_DIR"``).
    :returns: nothing.

    .. versionadded:: 0.1
    """


@hookspec
def register_trainers(register):
    """Register trainers (a training loop on some hardware for some recipe).

    :param register: call ``register(trainer)`` once per trainer. ``trainer``
        implements :class:`anbench.plugin_types.Trainer`: ``name``, ``summary``,
        ``availability()``, and ``train(request)`` returning a
        :class:`anbench.plugin_types.TrainResult` (accuracies in percent,
        ``train_time_s`` positive, the epochs the metrics come from).
    :returns: nothing.

    .. versionadded:: 0.1
    """


@hookspec
def register_compilers(register):
    """Register compilers that turn an architecture into a device artifact.

    :param register: call ``register(compiler)`` once per compiler. ``compiler``
        implements :class:`anbench.plugin_types.Compiler`: ``name``, ``summary``,
        ``targets`` (the ``anbench compile --target`` names it accepts, e.g.
        ``("zcu102", "vck190")``), ``availability()``, and ``compile(request)`` returning
        a :class:`anbench.plugin_types.CompiledArtifact` (a file path plus the
        fingerprint facts that key the artifact cache).
    :returns: nothing. A target claimed by two compilers is a load error of the later one.

    .. versionadded:: 0.1
    """


@hookspec
def register_trackers(register):
    """Register experiment trackers (wandb, ...) that ``anbench train --track <name>`` turns on.

    :param register: call ``register(tracker)`` once per tracker. ``tracker`` implements
        :class:`anbench.plugin_types.Tracker`: ``name``, ``summary``, ``availability()``,
        ``start(run) -> handle`` with a :class:`anbench.plugin_types.TrackerRun`,
        ``log_epoch(handle, row)`` and ``finish(handle, metrics, checkpoint)``.
    :returns: nothing.

    Trackers are called on rank 0 only. Credentials come from the environment or netrc,
    never from a command-line option, a log line, a run config or the store. A tracker
    that cannot reach its service says so once and works offline (or not at all), never
    failing the training.

    .. versionadded:: 0.2
    """


# --- command line --------------------------------------------------------------------


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``anbench`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)``. Commands
        must not shadow built-in ones (a clash is a load error of the plugin).
    :returns: nothing.

    .. versionadded:: 0.1
    """
