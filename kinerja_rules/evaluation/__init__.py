"""The evaluation layer: how a record becomes a decision, the same way wherever it comes in.

`intake` makes a record clean or its error, `decide` decides it with a compiled policy (a
fault becoming that record's error), `tracing` builds and renders what explain shows. The
engine's `decide` and `decide_many` are built on them, and so is the population run.
"""
