from raksha.cli import main

main()
