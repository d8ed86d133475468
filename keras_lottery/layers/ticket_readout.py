"""`TicketReadout`: what a masked layer's mask logits `s` say about its ticket, a mixin of
`MaskedLayer` (`keras_lottery.layers.masked_layer`)."""

import numpy as np
from keras import ops

from keras_lottery.layers import mask_rules


class TicketReadout:
    """What a masked layer's logits `s` say about its ticket (`b(s) = 1[s > 0]`,
    `mask_rules.kept`): the mask at the kernel's shape, its size, how far the soft mask is
    from it, and setting it."""

    def ticket_mask(self):
        """The binary ticket mask `b(s) = 1[s > 0]` at the kernel's shape (numpy bool)."""
        groups = mask_rules.kept(ops.convert_to_numpy(self.mask_logits))
        return np.array(self.granularity.expand_numpy(groups, tuple(self._kernel.shape)))

    def group_rms(self):
        """The root mean square of each group's weights `w` (`|w|` per weight)."""
        return np.sqrt(self.granularity.group_values(
            np.square(self._kernel.numpy()), tuple(self.mask_logits.shape), np.mean))

    def undecided_groups(self, tolerance=1e-3):
        """How many groups' inference mask `m` differs from the ticket `b(s)` by more than
        `tolerance` (CS before `sigmoid(beta*s)` has saturated; 0 for binary rules)."""
        soft = np.asarray(ops.convert_to_numpy(self.soft_mask()), dtype="float64")
        ticket = mask_rules.kept(ops.convert_to_numpy(self.mask_logits))
        return int(np.sum(np.abs(soft - ticket) > tolerance))

    def remaining_fraction(self):
        """Fraction of this layer's weights kept by the ticket mask."""
        return float(np.mean(mask_rules.kept(self.mask_logits.numpy())))

    def set_ticket_mask(self, mask):
        """Sets `s` so that the binary mask is `mask` (kernel- or group-shaped)."""
        mask = self.granularity.to_groups(mask, self)
        self.mask_logits.assign(np.where(mask, 1.0, -1.0).astype("float32"))
