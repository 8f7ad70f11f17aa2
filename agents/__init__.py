"""The people who answer: agents on their seats, app_queue membership, queue_log."""
