"""The stages of a photo's life as plain functions over the ledger.

Each stage is `verb_noun(ctx, item)`, begins by checking whether the ledger
already records the work as done, records its intent before talking to
Studio or the disk and its result after. The daemon's reconciler calls them;
so does recovery, which is nothing but the first pass of the same loop.
"""
