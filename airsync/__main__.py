from airsync.cli import run

run()
