"""Member, for "a channel whose peer died":

  peer_died.py hold CHANNEL      attaches as the only sender, sends "hello",
                                 prints "holding" and sleeps until killed
  peer_died.py wait CHANNEL      receives "hello", then expects pat.PeerDied
                                 (within 60 s); prints "ok PeerDied: ..."
  peer_died.py interrupt CHANNEL blocks in recv() with nothing coming; a
                                 SIGALRM handler raising must end the wait;
                                 prints "ok interrupted after S s"
"""
import signal
import sys
import time

import pat


def hold(name):
    channel = pat.Channel(name, "send")
    channel.send("hello")
    print("holding", flush=True)
    while True:
        time.sleep(3600)


def wait(name):
    channel = pat.Channel(name, "receive")
    assert channel.recv(timeout=60) == "hello"
    try:
        channel.recv(timeout=60)
    except pat.PeerDied as error:
        print(f"ok PeerDied: {error}")
        return
    raise AssertionError("no PeerDied")


class Alarm(Exception):
    pass


def interrupt(name):
    channel = pat.Channel(name, "both")  # also a sender: never PeerDied, only the alarm ends it

    def on_alarm(signum, frame):
        raise Alarm()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    started = time.monotonic()
    try:
        channel.recv()
    except Alarm:
        print(f"ok interrupted after {time.monotonic() - started:.2f} s")
        return
    raise AssertionError("recv returned")


if __name__ == "__main__":
    {"hold": hold, "wait": wait, "interrupt": interrupt}[sys.argv[1]](sys.argv[2])
