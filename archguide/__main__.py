from archguide.cli import main

raise SystemExit(main())
