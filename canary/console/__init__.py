"""What people see in the terminal: ``canary status``, ``canary watch``, ``canary describe``.

Each command reads through :mod:`canary.kube` and renders with pure functions (a Canary
and its events in, text out), so every screen is unit-tested without a cluster:

- :mod:`canary.console.render`: text primitives (tables, bars, ages, numbers, ANSI styles);
- :mod:`canary.console.view`: what a Canary's status and events mean for a reader (its
  last decision and why, its progress, each metric against its bound);
- :mod:`canary.console.status`, :mod:`canary.console.describe`,
  :mod:`canary.console.watch`: one command each;
- :mod:`canary.console.cli`: their command-line interface (and ``canary convert``'s).
"""
