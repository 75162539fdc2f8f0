from trialdesk.cli import app

app()
