from .cli.daemon import main

main()
