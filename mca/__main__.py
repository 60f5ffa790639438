from mca.cli import main

main()
