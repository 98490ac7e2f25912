"""The registry: members, sites, devices, contracts and tariff plans (the fleet file)."""
