from imbstat.cli import main

main()
