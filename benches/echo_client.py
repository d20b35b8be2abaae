"""A lock-step echo client for benches/echo_callgrind.sh: PORT N CONNS.

Sends 64 bytes on every connection, then reads each echo back, N times."""
import socket
import sys

port, rounds = int(sys.argv[1]), int(sys.argv[2])
conns = int(sys.argv[3]) if len(sys.argv) > 3 else 1
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
for s in socks:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
message = b"x" * 64
for _ in range(rounds):
    for s in socks:
        s.sendall(message)
    for s in socks:
        got = b""
        while len(got) < len(message):
            chunk = s.recv(len(message) - len(got))
            if not chunk:
                sys.exit("the server closed the connection")
            got += chunk
for s in socks:
    s.close()
