"""Framework adapters: each turns one framework's callbacks into neutral run events."""
