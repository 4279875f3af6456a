"""Member, for "a channel whose peer died":

  peer_died.py hold CHANNEL      attaches as the only sender, sends "hello",
                                 prints "holding" and sleeps until killed
  peer_died.py wait CHANNEL      receives "hello", then expects pat.PeerDied
                                 (within 60 s); prints "ok PeerDied: ..."
  peer_died.py interrupt CHANNEL blocks in recv() with nothing coming; a
                                 SIGALRM handler raising must end the wait;
                                 prints "ok interrupted after S s"
  peer_died.py exit CHANNEL      leaves daemon threads waking from recv()
                                 every millisecond while the interpreter
                                 finalizes; prints "ok exiting" and must then
                                 exit 0 (CPython ends such threads with
                                 pthread_exit, which must not abort us)
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


def exit_with_receivers_waking(name):
    import threading
    channel = pat.Channel(name, "both")

    def keep_receiving():
        while True:
            try:
                channel.recv(timeout=0.001)
            except TimeoutError:
                pass

    for _ in range(8):
        threading.Thread(target=keep_receiving, daemon=True).start()
    time.sleep(0.2)
    print("ok exiting", flush=True)


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
    {"hold": hold, "wait": wait, "interrupt": interrupt, "exit": exit_with_receivers_waking}[sys.argv[1]](sys.argv[2])
