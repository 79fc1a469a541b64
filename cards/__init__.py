"""Pure Adaptive Card 1.3 builders: data in, card (webexpythonsdk.models.cards) out. No I/O."""
