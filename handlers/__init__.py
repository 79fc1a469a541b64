"""Chat commands and card actions, one module each; handlers.registry collects them."""
