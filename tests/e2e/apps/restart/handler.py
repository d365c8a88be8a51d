import time


def sleeper(event, context):
    time.sleep(event.get("sleep", 0))
    if "done_file" in event:
        with open(event["done_file"], "w") as out:
            out.write(context.aws_request_id)
    return "ok"
