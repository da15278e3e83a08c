from rentalctl.cli import main

main()
