from airsync.cli import main

raise SystemExit(main())
