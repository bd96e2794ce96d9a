from agentic_pipeline.interfaces.cli import main

main()
