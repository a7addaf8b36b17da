"""The data: scikit-learn's digits, the steps that prepare them, and the files that
carry them between stages.

Owns what the dataset is (:mod:`~digits_nn.data.digits`), the data steps as pure
functions on arrays (:mod:`~digits_nn.data.steps`), the augmentation of training
images (:mod:`~digits_nn.data.augment`), atomic writes and checked reads of
every file (:mod:`~digits_nn.data.files`), the readers and writers of each data
stage's artifact (:mod:`~digits_nn.data.artifacts`), and, on its own, the model file
format (:mod:`~digits_nn.data.model_file`).

May import numpy, scikit-learn, SciPy (scikit-learn's own dependency) and
:mod:`digits_nn.errors`. Only ``model_file`` may
import :mod:`digits_nn.core`: the data stages import no model code, so that a change to
the network never reruns them (a test checks it).
"""
