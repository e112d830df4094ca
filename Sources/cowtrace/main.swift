import CowtraceCLI

CowtraceMain.main()
