"""The network and its training, in numpy alone.

Owns the :class:`~digits_nn.core.network.Network`, its activations and losses (one
table each), the one forward pass that predictions, evaluation and the served model
share, and the two trainers side by side: the classic full-batch kernel
(:mod:`~digits_nn.core.kernel`) and the general trainer with the follow-ups' options
(:mod:`~digits_nn.core.trainer`).

May import numpy, the standard library, itself and :mod:`digits_nn.errors`; nothing
else of the project and no other package (a test checks it). Options arrive as plain
dataclasses (:class:`~digits_nn.core.training.TrainOptions`), never as the config schema.
"""
