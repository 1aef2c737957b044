from innkeeper.cli import main

main()
