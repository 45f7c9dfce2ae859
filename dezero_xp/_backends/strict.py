"""array-api-strict: the standard and nothing else, on several fake devices.

No kernel table of its own: ``GenericKernels`` (standard names only) is the proof that the core
needs nothing beyond the standard. The adapter answers ``"strict[:NAME]"`` (and
``"array_api_strict[:NAME]"``), ``Device("strict", NAME)`` and array-api-strict device objects,
and claims its arrays by the device each reports.

May import: dezero_xp._backends.base, dezero_xp._backends.generic and dezero_xp._install (the
install hint when array-api-strict is missing); array_api_strict lazily (an optional dependency).
"""

from __future__ import annotations

import re

from dezero_xp._backends.base import REGISTRY, Adapter, Backend, Device
from dezero_xp._backends.generic import GenericKernels
from dezero_xp._install import optional_dependency

_DEFAULT = "CPU_DEVICE"


def _device_name(device) -> str:
    match = re.search(r"'([^']*)'", repr(device))
    return match.group(1) if match else str(device)


class StrictAdapter(Adapter):
    """array-api-strict arrays; each of its named devices is a backend of its own."""

    name = "strict"
    words = ("strict", "array_api_strict")
    spec_help = '"strict[:NAME]" or an array_api_strict.Device'

    def backend(self, name: str | None = None) -> Backend:
        name = name or _DEFAULT
        device = Device("strict", name)
        found = REGISTRY.get("strict", device)
        if found is not None:
            return found
        with optional_dependency("array_api_strict", "test", 'the "strict" device'):
            import array_api_strict as strict  # noqa: PLC0415 - optional dependency
            from array_api_strict._array_object import Array  # noqa: PLC0415

        try:
            native = strict.Device(name)
        except ValueError as exc:
            raise ValueError(f"device 'strict:{name}': {str(exc).rstrip('.')}") from None
        return REGISTRY.make(
            "strict",
            device,
            lambda: Backend("strict", strict, device, native, GenericKernels, Array),
        )

    def from_words(self, word, rest, spec):
        return self.backend(rest or None)

    def from_object(self, spec):
        if isinstance(spec, Device) and spec.type == "strict":
            return self.backend(None if spec.index is None else str(spec.index))
        if type(spec).__module__.split(".")[0] == "array_api_strict":
            return self.backend(_device_name(spec))
        return None

    def resolver(self, array):
        if type(array).__module__.split(".")[0] != "array_api_strict":
            return None
        return lambda a: self.backend(_device_name(a.device))


ADAPTER = StrictAdapter()
