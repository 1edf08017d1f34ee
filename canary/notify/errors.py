"""Why an alert could not be sent, as exceptions under :class:`canary.errors.CanaryError`.

They never escape the :class:`~canary.notify.Notifier`: each becomes a
:class:`~canary.notify.DeliveryFailure` handed to the controller, because a missing
Secret or a dead chat service is something to report, not a reason to stop a rollout::

    CanaryError
    └── NotifyError                an alert could not be sent
        ├── ProviderUnavailable    the AlertProvider is missing or does not match its schema
        └── AddressUnavailable     its Secret, or the Secret's `address`, is missing or invalid

Messages never contain the address: they end up in logs and Kubernetes events.
"""

from __future__ import annotations

from canary.errors import CanaryError


class NotifyError(CanaryError):
    """An alert could not be sent; ``reason`` is the CamelCase word for events."""

    reason = "AlertFailed"


class ProviderUnavailable(NotifyError):
    """The AlertProvider a Canary names does not exist or does not match its schema."""

    reason = "AlertProviderUnavailable"


class AddressUnavailable(NotifyError):
    """The provider's Secret, or its ``address`` key, is missing or not an http(s) URL."""

    reason = "AlertAddressUnavailable"
