"""The HTTP layer: parse, call one service, serialise. No rules live here."""
