select * from snapshot_info
