from xsmoe.cli import main

raise SystemExit(main())
