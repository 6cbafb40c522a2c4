#!/usr/bin/python3
"""A local RTSP server for Vitrine's live-capture tests (an IP camera on loopback).
Debian packages: gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-{base,good,bad}
(scripts/setup.sh installs them). Run with Debian's /usr/bin/python3 (it has `gi`).
Mounts:
  /file  -> the H.264 of an MP4 file (no re-encode), paced at its native fps, from the start
            for each client
  /live  -> a live test pattern encoded with openh264enc (640x480 @ 15 fps)
usage: rtsp_server.py PORT MP4 [USER PASSWORD]   (with USER/PASSWORD: Basic auth required)"""
import sys
import gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
port, mp4 = sys.argv[1], sys.argv[2]
srv = GstRtspServer.RTSPServer(); srv.set_address("127.0.0.1"); srv.set_service(port)
mounts = srv.get_mount_points()
f = GstRtspServer.RTSPMediaFactory()
f.set_launch(f"( filesrc location={mp4} ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )")
l = GstRtspServer.RTSPMediaFactory()
l.set_launch("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=15/1 "
             "! openh264enc gop-size=30 ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )")
l.set_shared(True)
if len(sys.argv) > 4:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(sys.argv[3], sys.argv[4]), token)
    srv.set_auth(auth)
    for factory in (f, l):
        perm = GstRtspServer.RTSPPermissions()
        perm.add_role_from_structure(Gst.Structure.new_empty("user"))
        perm.add_permission_for_role("user", "media.factory.access", True)
        perm.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(perm)
mounts.add_factory("/file", f)
mounts.add_factory("/live", l)
srv.attach(None)
print(f"rtsp://127.0.0.1:{port}/file  rtsp://127.0.0.1:{port}/live", flush=True)
GLib.MainLoop().run()
