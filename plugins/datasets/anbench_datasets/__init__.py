"""anbench plugin ``datasets``: imagenet (FFCV), ecg, satellite, deepsea.

This release registers the datasets and answers honestly whether their files are here;
the loaders arrive with the dataset-loader issue. Each dataset finds its files through one
environment variable naming a folder (never a hard-coded path):

============  ============================  =================================================
dataset       variable                      files looked for in that folder
============  ============================  =================================================
imagenet      ``ANBENCH_IMAGENET_DIR``      ``train*.ffcv`` and ``val*.ffcv`` (or ``.beton``)
ecg           ``ANBENCH_ECG_DIR``           ``challenge2017.pkl``
satellite     ``ANBENCH_SATELLITE_DIR``     ``satellite_train.npy`` and ``satellite_test.npy``
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
    from . import imagenet_cli

    imagenet_cli.register(cli)
