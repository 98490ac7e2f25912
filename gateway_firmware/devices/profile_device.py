"""A device read through a vendor register profile (Huawei, Sungrow, Growatt, ...)."""

from __future__ import annotations

from gateway_firmware.modbus.planner import Group, ReadPlan
from gateway_firmware.modbus.transport import ModbusBus, RegisterKind
from gateway_firmware.modbus.values import DecodedValues
from gateway_firmware.profiles import Profile, decode_identity, decode_registers


class ProfileDevice:
    """Reads every register of a profile, merging nearby registers into few requests."""

    def __init__(self, bus: ModbusBus, unit: int, profile: Profile) -> None:
        if profile.protocol != "registers":
            raise ValueError(f"profile {profile.name!r} is {profile.protocol}, not a register map")
        self.bus = bus
        self.unit = unit
        self.profile = profile
        self._plans: dict[RegisterKind, ReadPlan] = {}
        for kind in RegisterKind:
            groups = [Group(r.address, r.count) for r in profile.registers if r.kind is kind]
            if groups:
                self._plans[kind] = ReadPlan(
                    kind,
                    groups,
                    max_count=profile.bus.max_registers_per_read,
                    max_gap=profile.bus.max_gap,
                )

    def read(self) -> DecodedValues:
        tables: dict[RegisterKind, dict[int, int]] = {kind: {} for kind in RegisterKind}
        for kind, plan in self._plans.items():
            tables[kind] = plan.read(self.bus, self.unit)
        return decode_registers(
            self.profile, tables[RegisterKind.HOLDING], tables[RegisterKind.INPUT]
        )

    def identity(self) -> dict[str, str | None]:
        """Model, serial and firmware strings the profile says where to find."""
        strings = {}
        for key, spec in self.profile.identify.items():
            strings[key] = self.bus.read_registers(
                spec.kind, spec.address, spec.size, unit=self.unit
            )
        return decode_identity(strings)
