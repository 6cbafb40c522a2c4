#!/usr/bin/env python3
"""A disk with a volatile write cache, for the power-cut rig (scripts/powercut.sh).

Serves IMAGE over NBD on a Unix socket to one QEMU. A write the guest has not flushed stays in
this process's cache, sector by sector (512 bytes), the way a disk's write cache holds it; the
guest reads its own writes back. A FLUSH makes every cached sector durable (written to IMAGE),
a FUA write makes its own sectors durable. When the connection ends without NBD_CMD_DISC (QEMU
killed: the power cut), each unflushed sector reaches IMAGE with probability 1/2 and is lost
otherwise: writes the guest did not sync land partly, out of order and torn at sector
boundaries, which is what a power cut does to a real disk and more than a killed QEMU on a
host file would (the host's page cache keeps every write).

Usage: powercut-disk.py IMAGE SOCKET SEED       (exits after one guest's connection ends)
Prints one line: `disk: clean` (the guest disconnected) or `disk: cut kept=K lost=L`.
"""
import os
import random
import socket
import struct
import sys

SECTOR = 512
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
OPT_EXPORT_NAME, OPT_ABORT, OPT_INFO, OPT_GO = 1, 2, 6, 7
REP_ACK, REP_INFO, REP_ERR_UNSUP = 1, 3, 2**31 + 1
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES = 0, 1, 2, 3, 4, 6
CMD_FLAG_FUA = 1
# HAS_FLAGS | SEND_FLUSH | SEND_FUA: QEMU then tells the guest the disk has a volatile cache.
TRANSMISSION_FLAGS = 1 | 4 | 8
EINVAL = 22


class Disk:
    def __init__(self, path):
        self.file = open(path, "r+b")
        self.size = os.fstat(self.file.fileno()).st_size
        self.cache = {}  # sector number -> 512 bytes not yet durable

    def read(self, off, n):
        self.file.seek(off)
        data = bytearray(self.file.read(n))
        if self.cache:
            for s in range(off // SECTOR, (off + n - 1) // SECTOR + 1):
                cached = self.cache.get(s)
                if cached is not None:
                    lo, hi = max(off, s * SECTOR), min(off + n, (s + 1) * SECTOR)
                    data[lo - off : hi - off] = cached[lo - s * SECTOR : hi - s * SECTOR]
        return bytes(data)

    def write(self, off, data, durable):
        n, first = len(data), off // SECTOR
        last = (off + n - 1) // SECTOR
        for s in range(first, last + 1):
            lo, hi = max(off, s * SECTOR), min(off + n, (s + 1) * SECTOR)
            if hi - lo == SECTOR:
                sector = data[lo - off : hi - off]
            else:
                cur = bytearray(self.read(s * SECTOR, SECTOR))
                cur[lo - s * SECTOR : hi - s * SECTOR] = data[lo - off : hi - off]
                sector = bytes(cur)
            self.cache[s] = sector
        if durable:
            self.persist(range(first, last + 1))

    def persist(self, sectors):
        for s in sorted(sectors):
            sector = self.cache.pop(s, None)
            if sector is not None:
                self.file.seek(s * SECTOR)
                self.file.write(sector)
        self.file.flush()

    def flush(self):
        self.persist(list(self.cache))

    def power_cut(self, rng):
        keep = [s for s in self.cache if rng.random() < 0.5]
        lost = len(self.cache) - len(keep)
        self.persist(keep)
        self.cache.clear()
        return len(keep), lost


def recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def option_reply(conn, opt, kind, data=b""):
    conn.sendall(struct.pack(">QIII", REPLY_MAGIC, opt, kind, len(data)) + data)


def negotiate(conn, disk):
    """Fixed newstyle handshake; True once transmission starts."""
    conn.sendall(struct.pack(">QQH", NBDMAGIC, IHAVEOPT, 1 | 2))
    (client_flags,) = struct.unpack(">I", recv_exact(conn, 4))
    while True:
        _magic, opt, length = struct.unpack(">QII", recv_exact(conn, 16))
        recv_exact(conn, length)
        if opt == OPT_EXPORT_NAME:
            zeroes = b"" if client_flags & 2 else bytes(124)
            conn.sendall(struct.pack(">QH", disk.size, TRANSMISSION_FLAGS) + zeroes)
            return True
        if opt in (OPT_INFO, OPT_GO):
            option_reply(conn, opt, REP_INFO, struct.pack(">HQH", 0, disk.size, TRANSMISSION_FLAGS))
            option_reply(conn, opt, REP_ACK)
            if opt == OPT_GO:
                return True
        elif opt == OPT_ABORT:
            option_reply(conn, opt, REP_ACK)
            return False
        else:
            option_reply(conn, opt, REP_ERR_UNSUP)


def transmit(conn, disk):
    """Serve requests; True when the guest disconnected cleanly, False on a cut."""
    while True:
        try:
            header = recv_exact(conn, 28)
        except (EOFError, ConnectionError):
            return False
        magic, flags, kind, handle, off, length = struct.unpack(">IHHQQI", header)
        if magic != REQUEST_MAGIC:
            return False
        data = b""
        if kind == CMD_WRITE:
            try:
                data = recv_exact(conn, length)
            except (EOFError, ConnectionError):
                return False
        if kind == CMD_DISC:
            disk.flush()
            return True
        error, payload = 0, b""
        durable = bool(flags & CMD_FLAG_FUA)
        if kind in (CMD_READ, CMD_WRITE, CMD_WRITE_ZEROES, CMD_TRIM) and off + length > disk.size:
            error = EINVAL
        elif kind == CMD_READ:
            payload = disk.read(off, length)
        elif kind == CMD_WRITE:
            disk.write(off, data, durable)
        elif kind == CMD_WRITE_ZEROES:
            disk.write(off, bytes(length), durable)
        elif kind == CMD_FLUSH:
            disk.flush()
        elif kind != CMD_TRIM:
            error = EINVAL
        try:
            conn.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, error, handle) + payload)
        except ConnectionError:
            return False


def main():
    image, path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    disk, rng = Disk(image), random.Random(seed)
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    mine = os.stat(path).st_ino
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                if not negotiate(conn, disk):
                    continue
            except (EOFError, ConnectionError):
                continue
            clean = transmit(conn, disk)
        break
    if clean:
        print("disk: clean", flush=True)
    else:
        kept, lost = disk.power_cut(rng)
        print(f"disk: cut kept={kept} lost={lost}", flush=True)
    os.fsync(disk.file.fileno())
    if os.path.exists(path) and os.stat(path).st_ino == mine:
        os.unlink(path)


if __name__ == "__main__":
    main()
