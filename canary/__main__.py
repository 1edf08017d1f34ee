from canary.cli import main

raise SystemExit(main())
