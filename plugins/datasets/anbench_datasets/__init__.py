"""anbench plugin ``datasets``: imagenet (FFCV), ecg, satellite, deepsea.

The 1-D tasks (ecg, satellite, deepsea) read the NAS-Bench-360 files in their original
formats (:mod:`.seq_files`), build the 1-D AccelNet and compute their task metrics;
``anbench data make-sample`` writes small files in those formats. Each dataset finds its
files in ``--data-dir`` (``DataRequest.data_dir``) or else through one environment
variable naming a folder (never a hard-coded path):

============  ============================  =================================================
dataset       variable                      files looked for in that folder
============  ============================  =================================================
imagenet      ``ANBENCH_IMAGENET_DIR``      ``train*.ffcv`` and ``val*.ffcv`` (or ``.beton``)
ecg           ``ANBENCH_ECG_DIR``           ``challenge2017.pkl``
satellite     ``ANBENCH_SATELLITE_DIR``     ``satellite_train.npy`` and ``satellite_test.npy`` (or ``.beton``)
deepsea       ``ANBENCH_DEEPSEA_DIR``       ``deepsea_filtered.npz``
============  ============================  =================================================

Importing this module imports neither torch nor ffcv.
"""

from __future__ import annotations

from anbench import hookimpl

from .registry import DATASETS, DeepSeaDataset, EcgDataset, ImageNetDataset, SatelliteDataset

__version__ = "0.1.0"
__all__ = ["DATASETS", "DeepSeaDataset", "EcgDataset", "ImageNetDataset", "SatelliteDataset", "register_datasets"]


@hookimpl
def register_datasets(register):
    for dataset_class in DATASETS:
        register(dataset_class())


@hookimpl
def register_commands(cli):
    from . import cli as seq_cli, imagenet_cli

    imagenet_cli.register(cli)
    seq_cli.register(cli)
