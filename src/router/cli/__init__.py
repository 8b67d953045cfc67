"""The `router` command line: `main.py` parses, one module per command does the work.

    main.py          the top-level parser, --version, dispatch
    serve.py         router serve, router check
    banner.py        what `router serve` prints at start-up
    keys.py          router keys create|list|update|revoke
    prices.py        router prices refresh
    catalog_edit.py  the line-based TOML editor `router prices` writes with
    common.py        --config, configuration errors that say what to do next

Importing a command loads neither Starlette nor aiohttp; only `router serve` does.
"""
