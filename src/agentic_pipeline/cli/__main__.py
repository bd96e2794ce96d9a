from agentic_pipeline.cli import main

main()
