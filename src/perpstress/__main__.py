from perpstress.cli import main

main()
