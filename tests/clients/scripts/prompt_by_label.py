"""Driven by tests/web/test_prompt_pages_browser.py inside the langfuse 5.x venv: fetches one prompt by label
with the SDK's get_prompt (no cache, no fallback) and prints what it got as one JSON line on stdout.

Usage: prompt_by_label.py NAME LABEL
"""

import json
import sys

from langfuse import Langfuse

name, label = sys.argv[1], sys.argv[2]
prompt = Langfuse().get_prompt(name, label=label, cache_ttl_seconds=0)
print(
    json.dumps(
        {
            "name": prompt.name,
            "version": prompt.version,
            "labels": list(prompt.labels),
            "prompt": prompt.prompt,
            "config": prompt.config,
            "is_fallback": prompt.is_fallback,
            "compiled": prompt.compile(name="Ada", shop="Lightfuse"),
        }
    )
)
