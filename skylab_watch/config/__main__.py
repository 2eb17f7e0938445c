"""`python -m skylab_watch.config`: print config.example.yaml, generated from the schema."""

from skylab_watch.config.render import render_example

print(render_example(), end="")
